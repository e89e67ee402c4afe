from diffusion_studio.cli import main

raise SystemExit(main())
