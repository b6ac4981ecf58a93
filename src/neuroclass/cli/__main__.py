"""`python -m neuroclass.cli`: the neuroclass command."""
from neuroclass.cli import entry

if __name__ == "__main__":
    entry()
