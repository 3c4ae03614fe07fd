"""Lookbook's benchmark: ``make bench`` (or ``python -m bench [--quick]``) writes bench/report/BENCHMARKS.md.

Quality on CCP-Posts val, speed at scale and pictures of real recommendations, every figure
produced by the run on this machine, each speed beside a baseline from the same run.
"""
