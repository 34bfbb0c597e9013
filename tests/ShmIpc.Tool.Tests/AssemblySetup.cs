// Cross-process tests share two cores: run test classes one at a time so deadlines stay honest.
[assembly: DoNotParallelize]
