"""`python -m arcflare.ledger`: run the ledger until SIGTERM."""
from arcflare.ledger.bootstrap import bootstrap

if __name__ == "__main__":
    bootstrap().run()
