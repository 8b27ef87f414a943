from arcflare.job_controller.bootstrap import bootstrap

if __name__ == "__main__":
    bootstrap().run()
