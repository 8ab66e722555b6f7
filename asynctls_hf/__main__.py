"""`python -m asynctls_hf ...` runs the asynctls-hf command line."""

from asynctls_hf.cli import main

raise SystemExit(main())
