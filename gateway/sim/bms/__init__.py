"""Commercial BMSes as their serial ports answer, written from the same protocol documents as
gateway/sources/packs (and independently of that code, so that each checks the other): one
emulator per protocol over a shared pack state (pack.py), and a pseudo-terminal server
(pty.py) that answers on one side of an os.openpty pair with injectable faults, for the
tests and the simulator."""
