"""The study's release in one place: reading its files (``release``, ``files``), the paper's numbers
and tables (``numbers``), their recomputation from the released predictions (``recompute``), the
released per-fact results as toolkit results (``released``) and KLAR by the study's protocol
(``klar_study``). The figures layer draws them (``polyfact.figures.paper``)."""
