#!/usr/bin/env bash
# Install the Debian tools relm uses, when they are missing and we can (root or sudo): espeak-ng and
# sox (the synthetic corpus) and chromium (the test that renders report.html in a real browser; it is
# skipped without it). Never fails the set-up: it says what to do.
set -u
missing=()
for tool in espeak-ng sox chromium; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
[ ${#missing[@]} -eq 0 ] && { echo "system tools: espeak-ng, sox and chromium present"; exit 0; }
if [ "$(id -u)" -eq 0 ]; then sudo=""; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo"
else
  echo "WARNING: missing ${missing[*]}; relm cannot install them without root."
  echo "         Run: sudo apt-get update && sudo apt-get install -y ${missing[*]}"
  echo "         (without espeak-ng the synthetic corpus cannot be generated and its tests are skipped;"
  echo "         without chromium the browser check of report.html is skipped)"
  exit 0
fi
if command -v apt-get >/dev/null; then
  echo "installing ${missing[*]} with apt-get"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null \
    && exit 0
fi
echo "WARNING: could not install ${missing[*]}; install them with your system's package manager."
exit 0
