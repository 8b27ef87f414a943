"""`python -m arcflare.site_agent`: one agent beside one site's NVFlare client."""
from arcflare.site_agent.bootstrap import bootstrap

if __name__ == "__main__":
    bootstrap().run()
