from coachd.cli import main

raise SystemExit(main())
