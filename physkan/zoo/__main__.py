"""``python -m physkan.zoo ...`` runs the zoo CLI without the main ``physkan`` command."""

from physkan.zoo.cli import zoo_group

if __name__ == "__main__":
    zoo_group(prog_name="physkan zoo")
