"""`python -m arcflare.provisioner`: run the provisioner until SIGTERM."""
from arcflare.provisioner.bootstrap import bootstrap

if __name__ == "__main__":
    bootstrap().run()
