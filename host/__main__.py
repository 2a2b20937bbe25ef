"""`python -m host record|calibrate ...`: the real-host commands without the rest of `piop`."""

from host.cli import app

app(prog_name="piop")
