"""One importer per layer of the register; geodata.importing.services.LAYERS lists them by key."""
