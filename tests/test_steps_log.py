"""The rule log gets the step's output and, when it fails, its traceback."""

import pytest

from anonbench import steps


def test_failure_traceback_goes_to_the_rule_log(tmp_path):
    log = tmp_path / "logs" / "x.log"
    with pytest.raises(ValueError, match="corrupt image"):
        with steps.logged(str(log)):
            print("reading shard 000")
            raise ValueError("corrupt image: a.jpg")
    text = log.read_text()
    assert "reading shard 000" in text
    assert "Traceback" in text and "ValueError: corrupt image: a.jpg" in text
    assert "done in" not in text


def test_success_is_logged_with_its_time(tmp_path):
    log = tmp_path / "x.log"
    with steps.logged(str(log)):
        print("ok")
    assert log.read_text().startswith("ok\ndone in ")
