#!/usr/bin/env bash
# Install the Debian tools the default run needs (espeak-ng for the synthetic corpus, sox),
# when they are missing and we can (root or sudo). Never fails the set-up: it says what to do.
set -u
missing=()
for tool in espeak-ng sox; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
[ ${#missing[@]} -eq 0 ] && { echo "system tools: espeak-ng and sox present"; exit 0; }
if [ "$(id -u)" -eq 0 ]; then sudo=""; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo"
else
  echo "WARNING: missing ${missing[*]}; relm cannot install them without root."
  echo "         Run: sudo apt-get update && sudo apt-get install -y ${missing[*]}"
  echo "         (without espeak-ng the synthetic corpus cannot be generated; its tests are skipped)"
  exit 0
fi
if command -v apt-get >/dev/null; then
  echo "installing ${missing[*]} with apt-get"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null \
    && exit 0
fi
echo "WARNING: could not install ${missing[*]}; install them with your system's package manager."
exit 0
