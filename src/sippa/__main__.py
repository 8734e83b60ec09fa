from sippa.interfaces.cli import main

raise SystemExit(main())
