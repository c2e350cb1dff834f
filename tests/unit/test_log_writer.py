"""The worker's log writer: lines of one loop iteration leave together, in order, promptly."""

import asyncio
import io

from cli.log_writer import LoopBatchedWriter


class CountingFile(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


async def test_lines_of_one_iteration_are_one_write_and_leave_in_that_iteration() -> None:
    file = CountingFile()
    writer = LoopBatchedWriter(file)
    for n in range(256):
        writer.info(f"line {n}")
    assert file.getvalue() == ""  # not yet: the rest of this iteration may add lines
    await asyncio.sleep(0)
    assert file.getvalue().splitlines() == [f"line {n}" for n in range(256)]
    assert file.writes == 1
    writer.warning("later")
    await asyncio.sleep(0)
    assert file.getvalue().splitlines()[-1] == "later"
    assert file.writes == 2


def test_outside_a_running_loop_a_line_is_written_at_once() -> None:
    file = CountingFile()
    LoopBatchedWriter(file).error("at once")
    assert file.getvalue() == "at once\n"
