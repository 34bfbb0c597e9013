namespace ShmIpc.TestHost;

internal static partial class Scenarios
{
    static partial void RegisterLoans()
    {
        // queue-loan-hold <name> <maxLength>: opens the queue, takes a loan, fills it with 0xEE, says READY and waits to
        // be killed without committing (a producer killed while holding a loan).
        Add("queue-loan-hold", a =>
        {
            using ShmQueue queue = ShmQueue.Open(a[0]);
            ShmLoan loan = queue.Loan(Int(a[1]), TimeSpan.FromSeconds(10));
            loan.Span.Fill(0xEE);
            Say("READY");
            Hold();
            loan.Commit(loan.Span.Length);
            return 0;
        });

        // pipe-loan-hold <name>: connects, sends [1], takes a loan, fills it, says READY and waits to be killed without
        // committing.
        Add("pipe-loan-hold", a =>
        {
            using ShmConnection connection = ShmPipe.Connect(a[0], s_pipeOptions);
            connection.Send([1]);
            ShmLoan loan = connection.Loan(64, TimeSpan.FromSeconds(10));
            loan.Span.Fill(0xEE);
            Say("READY");
            Hold();
            loan.Commit(loan.Span.Length);
            return 0;
        });
    }
}
