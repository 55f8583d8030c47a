"""`python -m cli` is the `interestlens` command; `torchrun --nproc_per_node N -m cli train ...` trains with DDP."""

from cli import main

if __name__ == "__main__":
    main()
