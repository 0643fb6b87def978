from shipyard.cli.main import app

app()
