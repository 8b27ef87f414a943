"""`python -m arcflare.alerter`: run the alerter until SIGTERM; a bad rules file stops it
at once with the line and the problem (exit 2)."""
import sys

from arcflare.alerter.bootstrap import bootstrap
from arcflare.alerter.loader import RulesFileError

if __name__ == "__main__":
    try:
        service = bootstrap()
    except RulesFileError as exc:
        sys.stderr.write(f"alerter: invalid rules file\n{exc}\n")
        sys.exit(2)
    service.run()
