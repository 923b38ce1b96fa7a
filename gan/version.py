"""The package's version (read by pyproject.toml) and the format version of the config.json files it writes."""

__version__ = "0.3.0"

# config.json format: MAJOR.MINOR. A minor step only adds fields, which older readers skip with a warning; a major
# step changes the meaning of existing fields, so readers of an older major refuse such files. Files written before
# the format carried a version read as "1.0"; 1.1 added output_gain.
CONFIG_FORMAT = "1.1"
