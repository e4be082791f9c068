from le_intake.cli import main

main()
