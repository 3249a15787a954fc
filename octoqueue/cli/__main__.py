from octoqueue.cli import main

main(prog_name="octoqueue")
