from alphaloom.cli import app

app()
