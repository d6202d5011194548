"""Text from training scripts, made safe for the terminal."""

from harness.text import printable


def test_escape_sequences_removed():
    assert printable("\x1b[2Jclear\x1b[31m red\x1b[0m") == "clear red"


def test_window_title_removed():
    assert printable("a\x1b]0;PWNED\x07b") == "ab"


def test_control_characters_shown():
    assert printable("a\rb\x00c") == "a\\x0db\\x00c"


def test_undecodable_bytes_shown():
    assert printable("bad\udcff") == "bad\\udcff"


def test_plain_text_unchanged():
    assert printable("RMSE 511.075\tR2 -0.099") == "RMSE 511.075\tR2 -0.099"
