"""Facts about preset fields the loader and the content key need: which fields were added after preset hashes
were recorded (`relm.config.Preset.hash` leaves them out at their defaults) and which take one of a few words."""

# (section, field): fields added after hashes were recorded (see `Preset.hash`).
ADDED_LATER = [
    ("", "scorer_seeds"),
    ("train", "length_buckets"),
    ("train", "warmup"),
    ("train", "select"),
    ("train", "val_per_epoch"),
    ("train", "val_every_steps"),
    ("train", "freeze"),
    ("train", "target_end"),
    ("generate", "stop"),
    ("teacher", "decoding"),
    ("teacher", "clean"),
    ("lora", "shared_qkv_a"),
    ("emotion_encoder", "avd_targets"),
    ("train", "loss_group_size"),
    ("train", "lean_lora"),
    ("train", "compile_layers"),
    ("train", "pad_to_multiple"),
    ("generate", "static_cache"),
    ("", "scorer_params"),
    ("", "scorer_cv_folds"),
]

# Fields whose value is one of a few words (checked by the preset loader).
CHOICES = {
    ("train", "warmup"): ("linear", "log"),
    ("train", "select"): ("last", "best"),
    ("train", "target_end"): ("im_end", "release"),
    ("generate", "stop"): ("im_end", "release"),
    ("teacher", "decoding"): ("relm", "release"),
    ("teacher", "clean"): ("relm", "release"),
    ("emotion_encoder", "avd_targets"): ("annotations", "encoder"),
}
