"""`python -m asynctls_hf.eval`: run the accuracy harness."""

import sys

from asynctls_hf.eval.runner import main

sys.exit(main())
