"""The package's version (read by pyproject.toml) and the format version of the config.json files it writes."""

import argparse

__version__ = "0.3.0"

# config.json format: MAJOR.MINOR. A minor step only adds fields, which older readers skip with a warning; a major
# step changes the meaning of existing fields, so readers of an older major refuse such files. Files written before
# the format carried a version read as "1.0"; 1.1 added output_gain, 1.2 d_norm and class_frequencies (and
# gradient_penalty, penalty_every, hub_real_pool in training_config.json), 1.3 white_gain and
# output_norm, 1.4 output_norm "max-linear" (a reader of 1.3 refuses it with its list of norms), 1.5 d_histogram
# and d_patch (a reader of 1.4 skips them: its generators load; a discriminator with either head does not), 1.6
# white_dither (a reader of 1.5 skips it, and then a generator with the dither does not load), 1.7 white_slope (a
# reader of 1.6 skips it with its warning and draws such a model's plateaus flat, a few grey levels off), 1.8
# white_plateau and white_peaks (a reader of 1.7 skips them, and then a generator with a plateau does not load), 1.9
# g_noise and d_texture (a reader of 1.8 skips them, and then a generator with noise inputs or a discriminator with
# the texture head does not load).
CONFIG_FORMAT = "1.9"


def add_version_flag(parser) -> None:
    """`--version` on a command line (an argparse parser): prints the package and its config format, then exits."""
    parser.add_argument("--version", action="version",
                        version=f"conditional-gan {__version__} (config format {CONFIG_FORMAT})")


def command_parser(prog: str, description: str | None) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """A command line of subcommands (argparse): (parser, its subparsers). The description is printed as written
    (a module docstring keeps its usage lines), and `--version` is there."""
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_version_flag(parser)
    return parser, parser.add_subparsers(dest="command", required=True)
