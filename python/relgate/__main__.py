from relgate.cli import main

main()
