"""`python -m inside_core ...` is the same as the `inside` command."""

from inside_core.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
