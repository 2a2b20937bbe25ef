from experiments.cli import app

app(prog_name="piop")
