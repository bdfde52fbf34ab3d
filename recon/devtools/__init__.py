"""Tooling for developing recon, not the product: synthetic inputs (:mod:`.synth`), the
bundled sample's generator (:mod:`.sample`, ``make sample``) and ``recon bench``
(:mod:`.bench`). Nothing a reconcile, a review or a submit runs imports from here."""
