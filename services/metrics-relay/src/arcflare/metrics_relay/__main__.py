"""`python -m arcflare.metrics_relay`: run the service until SIGTERM."""
from arcflare.metrics_relay.bootstrap import bootstrap

if __name__ == "__main__":
    bootstrap().run()
