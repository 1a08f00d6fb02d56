namespace Ingestion.Sources.Ics;

/// <summary>
/// Repairs, in UTF-8 calendar bytes, a line folded inside a character (Outlook and other exporters fold at 75 octets
/// without looking at character boundaries): the incomplete first bytes of the character are moved after the fold's
/// line break and white space, so that unfolding and decoding give the character again. Line breaks stay where
/// they are, so line numbers in messages do not move; nothing else is changed. The inner stream is left open.
/// </summary>
internal sealed class FoldRepairStream(Stream inner) : Stream
{
    // The longest rewritten run: 3 lead bytes, CR, LF, the fold's white space, and the continuation byte looked at.
    private const int Lookahead = 7;

    // Bytes a later line feed may still move (3 lead bytes and a CR) are held back until it is seen.
    private const int Holdback = 4;

    private readonly byte[] _buffer = new byte[16 * 1024];
    private int _start;
    private int _end;
    private int _scanned;
    private bool _eof;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        while (true)
        {
            // Line feeds are looked at once what follows them is there; bytes are handed out once no later fold can move them.
            Repair(_eof ? _end : _end - Lookahead);
            var final = _eof && _scanned >= _end ? _end : _scanned - Holdback;
            var available = final - _start;
            if (available > 0 || (_eof && _start == _end))
            {
                var n = Math.Min(available, buffer.Length);
                _buffer.AsSpan(_start, n).CopyTo(buffer);
                _start += n;
                return n;
            }

            Fill();
        }
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    private void Fill()
    {
        if (_start > 0)
        {
            _buffer.AsSpan(_start, _end - _start).CopyTo(_buffer);
            _end -= _start;
            _scanned -= _start;
            _start = 0;
        }

        var read = inner.Read(_buffer, _end, _buffer.Length - _end);
        _eof = read == 0;
        _end += read;
    }

    /// <summary>Looks at each line feed before <paramref name="limit"/> and rotates a character split by a fold.</summary>
    private void Repair(int limit)
    {
        Span<byte> moved = stackalloc byte[Lookahead];
        for (; _scanned < limit; _scanned++)
        {
            if (_buffer[_scanned] != (byte)'\n' || _scanned + 2 >= _end || _buffer[_scanned + 1] is not ((byte)' ' or (byte)'\t') || !IsContinuation(_buffer[_scanned + 2]))
            {
                continue;
            }

            var breakStart = _scanned > _start && _buffer[_scanned - 1] == (byte)'\r' ? _scanned - 1 : _scanned;
            var lead = IncompleteCharacterStart(breakStart);
            if (lead < 0)
            {
                continue;
            }

            // [lead bytes][CR LF][WSP] -> [CR LF][WSP][lead bytes]: the fold stays on its line, the character is whole after it.
            var split = breakStart - lead;
            var fold = _scanned + 2 - breakStart;
            _buffer.AsSpan(lead, split).CopyTo(moved);
            _buffer.AsSpan(breakStart, fold).CopyTo(_buffer.AsSpan(lead));
            moved[..split].CopyTo(_buffer.AsSpan(lead + fold));
            _scanned = lead + fold - 1;
        }
    }

    /// <summary>Where the character the bytes before <paramref name="end"/> end inside of begins, or -1 when they end on a boundary.</summary>
    private int IncompleteCharacterStart(int end)
    {
        for (var i = end - 1; i >= _start && i >= end - 3; i--)
        {
            var b = _buffer[i];
            if (IsContinuation(b))
            {
                continue;
            }

            var length = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
            return length > end - i ? i : -1;
        }

        return -1;
    }

    private static bool IsContinuation(byte b) => (b & 0xC0) == 0x80;
}
