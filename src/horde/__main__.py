from horde.cli.main import main

main()
