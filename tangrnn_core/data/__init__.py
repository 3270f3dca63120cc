"""The Tang poetry corpus: the bundled file, its reader (:mod:`.corpus`), its builder (:mod:`.build`)
and the ``tangrnn data`` verb (:mod:`.commands`)."""
