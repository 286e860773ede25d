import sys

from physkan.kan.native import _main

sys.exit(_main())
