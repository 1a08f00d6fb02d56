using System.Security.Cryptography;

namespace Ingestion.Sources.Http;

/// <summary>
/// A read-only stream over a response body that enforces a byte cap (and optionally an expansion ratio
/// against another guarded stream), a per-read idle timeout, turns network errors into transient ingestion
/// errors naming the source and URL, and can hash what passes through.
/// </summary>
internal sealed class GuardedStream : Stream
{
    private const long RatioGrace = 1 << 20;

    private readonly Stream _inner;
    private readonly long _limit;
    private readonly Func<long, string> _overLimit;
    private readonly GuardedStream? _compressed;
    private readonly double _maxRatio;
    private readonly TimeSpan? _idleTimeout;
    private readonly TimeProvider _time;
    private readonly string _describe;
    private readonly IncrementalHash? _hash;
    private readonly Action? _onDispose;
    private CancellationTokenSource? _idle;
    private bool _disposed;

    public GuardedStream(
        Stream inner,
        long limit,
        Func<long, string> overLimit,
        string describe,
        TimeProvider time,
        TimeSpan? idleTimeout = null,
        GuardedStream? compressed = null,
        double maxRatio = double.PositiveInfinity,
        bool hash = false,
        Action? onDispose = null)
    {
        _inner = inner;
        _limit = limit;
        _overLimit = overLimit;
        _describe = describe;
        _time = time;
        _idleTimeout = idleTimeout;
        _compressed = compressed;
        _maxRatio = maxRatio;
        _hash = hash ? IncrementalHash.CreateHash(HashAlgorithmName.SHA256) : null;
        _onDispose = onDispose;
    }

    /// <summary>Bytes read through this stream so far.</summary>
    public long BytesRead { get; private set; }

    /// <summary>Whether the end of the stream was reached.</summary>
    public bool Completed { get; private set; }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => BytesRead;
        set => throw new NotSupportedException();
    }

    /// <summary>The lowercase hex SHA-256 of everything read, once the end was reached; otherwise <see langword="null"/>.</summary>
    public string? HashHex { get; private set; }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int n;
        try
        {
            n = _inner.Read(buffer);
        }
        catch (InvalidDataException e)
        {
            throw Corrupt(e);
        }
        catch (IOException e)
        {
            throw Broken(e);
        }

        return Account(buffer[..n]);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int n;
        if (_idleTimeout is { } idle)
        {
            if (_idle is null || !_idle.TryReset())
            {
                _idle?.Dispose();
                _idle = new CancellationTokenSource(Timeout.InfiniteTimeSpan, _time);
            }

            _idle.CancelAfter(idle);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _idle.Token);
            try
            {
                n = await _inner.ReadAsync(buffer, linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested && _idle.IsCancellationRequested)
            {
                throw new TransientIngestionException($"{_describe}: the server sent nothing for {idle.TotalMilliseconds:0} ms while the body was read after {BytesRead} bytes (ReadTimeout).", e);
            }
            catch (InvalidDataException e)
            {
                throw Corrupt(e);
            }
            catch (IOException e)
            {
                throw Broken(e);
            }
            finally
            {
                _idle.CancelAfter(Timeout.InfiniteTimeSpan);
            }
        }
        else
        {
            try
            {
                n = await _inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            }
            catch (InvalidDataException e)
            {
                throw Corrupt(e);
            }
            catch (IOException e)
            {
                throw Broken(e);
            }
        }

        return Account(buffer.Span[..n]);
    }

    private IngestionException Corrupt(InvalidDataException e) =>
        new($"{_describe}: the compressed body is corrupt after {BytesRead} decompressed bytes ({e.Message}).", e);

    private TransientIngestionException Broken(IOException e) =>
        new($"{_describe}: the connection broke after {BytesRead} bytes of the body ({e.Message}).", e);

    private int Account(ReadOnlySpan<byte> read)
    {
        if (read.Length == 0)
        {
            if (!Completed)
            {
                Completed = true;
                if (_hash is not null)
                {
                    HashHex = Convert.ToHexStringLower(_hash.GetHashAndReset());
                }
            }

            return 0;
        }

        BytesRead += read.Length;
        if (BytesRead > _limit)
        {
            throw new IngestionException(_overLimit(BytesRead));
        }

        if (_compressed is not null && BytesRead > RatioGrace && BytesRead > _compressed.BytesRead * _maxRatio)
        {
            throw new IngestionException($"{_describe}: the compressed body expanded more than {_maxRatio:0.#} times ({_compressed.BytesRead} bytes became over {BytesRead}); refusing a probable compression bomb (MaxExpansionRatio).");
        }

        _hash?.AppendData(read);
        return read.Length;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_disposed)
        {
            _disposed = true;
            _inner.Dispose();
            _idle?.Dispose();
            _hash?.Dispose();
            _onDispose?.Invoke();
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        if (!_disposed)
        {
            _disposed = true;
            await _inner.DisposeAsync().ConfigureAwait(false);
            _idle?.Dispose();
            _hash?.Dispose();
            _onDispose?.Invoke();
        }

        GC.SuppressFinalize(this);
    }
}
