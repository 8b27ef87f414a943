"""`python -m arcflare.site_agent`: one agent beside one site's NVFlare client."""
import sys

from arcflare.site_agent.bootstrap import bootstrap
from arcflare.site_agent.settings import SiteAgentSettings
from pydantic import ValidationError


def main() -> None:
    try:
        settings = SiteAgentSettings()
    except ValidationError as exc:
        problems = "; ".join(
            f"ARCFLARE_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors(include_url=False))
        sys.exit(f"site-agent settings are invalid: {problems}")
    bootstrap(settings).run()


if __name__ == "__main__":
    main()
