"""Exit statuses of the command line, one per kind of failure.

0  success
1  an internal failure (a defect, not the input): the traceback is written to a log file
2  bad input: a file or folder that cannot be read, a wrong option or value
3  a run whose row counts did not add up (nothing is published)
4  another run holds the same output folder
5  a worker process was killed, most often by the system for want of memory
130  interrupted (Ctrl-C)
"""

EXIT_INTERNAL_ERROR = 1
EXIT_INPUT_ERROR = 2
EXIT_RUN_FAILED = 3
EXIT_BUSY = 4
EXIT_WORKER_DIED = 5
EXIT_INTERRUPTED = 130
