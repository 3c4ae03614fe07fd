"""Pure loaders for the development datasets (no Django): :mod:`.ccp`, :mod:`.clothing`."""
