from octoqueue.cli import main

main()
