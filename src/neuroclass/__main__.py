"""``python -m neuroclass ...``: the same command line as the ``neuroclass`` script."""
from neuroclass.cli import entry

if __name__ == "__main__":
    entry()
