"""--dtype and --input-batch: parsed by every measuring command into the device they describe."""

from __future__ import annotations

import pytest

from acquisition.cli import build_parser, device_from_args


@pytest.mark.parametrize("command", ["profile", "remeasure", "run"])
def test_dtype_and_input_batch_reach_the_device(command: str) -> None:
    args = build_parser().parse_args([command, "--device", "cpu", "--threads", "2", "--dtype", "bfloat16",
                                      "--input-batch", "8"])
    dev = device_from_args(args)
    assert (dev.threads, dev.dtype, dev.batch_size) == (2, "bfloat16", 8)
    default = device_from_args(build_parser().parse_args([command, "--device", "cpu"]))
    assert (default.threads, default.dtype, default.batch_size) == (1, "float32", 1)


@pytest.mark.parametrize("flag, value", [("--dtype", "int8"), ("--input-batch", "0"), ("--input-batch", "x")])
def test_bad_device_options_are_one_line_errors(flag: str, value: str, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["profile", flag, value])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and flag in err and value in err and "Traceback" not in err
