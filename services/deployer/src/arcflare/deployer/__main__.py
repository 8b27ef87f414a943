"""`python -m arcflare.deployer`: run the deployer until SIGTERM."""
from arcflare.deployer.bootstrap import bootstrap

if __name__ == "__main__":
    bootstrap().run()
