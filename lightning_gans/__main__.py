from lightning_gans.run.main import main

main()
