"""The ``modelward`` console script: the same Rust entry point as the plain binary."""

import signal
import sys


def main() -> int:
    # Python turns Ctrl-C into KeyboardInterrupt, which it cannot raise while Rust runs the
    # command; restore the default so Ctrl-C stops a long scan as it does the binary.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    from modelward import _native

    return _native.main(sys.argv)


if __name__ == "__main__":
    sys.exit(main())
