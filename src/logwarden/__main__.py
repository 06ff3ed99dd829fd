from logwarden.cli import main

main()
