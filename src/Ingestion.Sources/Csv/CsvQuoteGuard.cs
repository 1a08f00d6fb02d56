using System.Buffers;
using CsvHelper;

namespace Ingestion.Sources.Csv;

/// <summary>Why <see cref="CsvQuoteGuard"/> took a quote as never closed.</summary>
internal enum CsvBrokenQuoteKind
{
    /// <summary>The quoted field spans more lines than <see cref="CsvSourceOptions.MaxFieldLines"/>.</summary>
    TooManyLines,

    /// <summary>The quoted field is longer than <see cref="CsvSourceOptions.MaxFieldBytes"/>.</summary>
    TooManyBytes,

    /// <summary>The input ends inside the quoted field.</summary>
    EndOfInput,

    /// <summary>A quoted field that spans lines is closed by a quote followed by text, not a separator or line end.</summary>
    TextAfterClosingQuote,

    /// <summary>A record made of several lines by a quoted field has a different number of fields than the header.</summary>
    FieldCount,
}

/// <summary>A quote taken as never closed: the record it belongs to, from its start to the end of the line where the quote opened.</summary>
/// <param name="Line">The 1-based line where the quote opened.</param>
/// <param name="Field">The 0-based index of the field the quote opened.</param>
/// <param name="Kind">Why the quote is taken as never closed.</param>
/// <param name="Raw">The rejected text (raw bytes of the input, not decoded).</param>
/// <param name="IsHeader">Whether the record is the header.</param>
internal readonly record struct CsvBrokenQuote(long Line, int Field, CsvBrokenQuoteKind Kind, byte[] Raw, bool IsHeader);

/// <summary>The limits and dialect <see cref="CsvQuoteGuard"/> works with.</summary>
/// <param name="Quote">The quote byte.</param>
/// <param name="Separator">The separator byte, or <see langword="null"/> to detect it as CsvHelper does.</param>
/// <param name="TrimWhitespace">Whether a quote after spaces or tabs still opens a quoted field.</param>
/// <param name="HasHeader">Whether the first record is a header.</param>
/// <param name="MaxFieldLines">The most lines one quoted field may span.</param>
/// <param name="MaxFieldBytes">The most bytes one quoted field may hold.</param>
/// <param name="CheckFieldCount">Whether a multi-line record with a field count unlike the header's is taken as broken.</param>
/// <param name="PassThrough">Whether the input is in an encoding whose bytes are not ASCII's (UTF-16, UTF-32): not guarded.</param>
internal sealed record CsvQuoteLimits(byte Quote, byte? Separator, bool TrimWhitespace, bool HasHeader, int MaxFieldLines, long MaxFieldBytes, bool CheckFieldCount, bool PassThrough = false);

/// <summary>
/// A read-only stream in front of a CSV reader that keeps one unclosed quote from swallowing the rest of the file.
/// It follows RFC 4180 quoting (a quote opens a quoted field only at the start of a field; elsewhere it is text) and
/// holds back a record while one of its quoted fields is open. When that field passes the limits, the input ends
/// inside it, or a field that spans lines closes badly, the quote is taken as never closed: the record, from its
/// start to the end of the line where the quote opened, is reported and replaced by empty lines (so line numbers
/// stay true and the reader skips them), and reading goes on at the next line. Input in UTF-16 or UTF-32 (a byte
/// order mark, or the configured encoding) passes through unguarded. The inner stream is not disposed.
/// </summary>
internal sealed class CsvQuoteGuard : Stream
{
    private const int ChunkSize = 64 * 1024;
    private const int MaxRawBytes = 8 * 1024;
    private static readonly byte[] Utf8Bom = [0xEF, 0xBB, 0xBF];
    private static readonly byte[] Utf16Le = [0xFF, 0xFE];
    private static readonly byte[] Utf16Be = [0xFE, 0xFF];
    private static readonly byte[] Utf32Be = [0, 0, 0xFE, 0xFF];
    private static readonly SearchValues<byte> LineBreaks = SearchValues.Create("\r\n"u8);

    private readonly Stream _inner;
    private readonly CsvQuoteLimits _limits;
    private readonly Action<CsvBrokenQuote> _onBroken;
    private SearchValues<byte>? _outside;
    private SearchValues<byte>? _inside;
    private byte _separator;
    private bool _passThrough;
    private bool _started;
    private bool _eof;
    private bool _hintLine;
    private bool _discarding;

    private byte[] _buf = new byte[ChunkSize];
    private int _start;
    private int _end;
    private int _scan;

    // Where the scan is.
    private long _line = 1;
    private bool _inQuotes;
    private bool _quoteSeen;
    private bool _afterClose;
    private bool _atFieldStart = true;
    private int _field;
    private long _records;
    private int _headerFields = -1;

    // The current record, and its quoted fields.
    private int _recordStart;
    private long _recordLine = 1;
    private int _openAt;
    private long _openLine;
    private int _openField;
    private int _openBreaks;
    private int _spanAt = -1;
    private long _spanLine;
    private int _spanField;

    public CsvQuoteGuard(Stream inner, CsvQuoteLimits limits, Action<CsvBrokenQuote> onBroken)
    {
        _inner = inner;
        _limits = limits;
        _onBroken = onBroken;
    }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    /// <summary>Bytes of the buffer that may go to the reader.</summary>
    private int Releasable => _passThrough || _eof ? _scan : _inQuotes || _spanAt >= 0 ? _recordStart : _scan;

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        while (Releasable == _start && !(_eof && _scan == _end))
        {
            Compact();
            var n = _inner.Read(_buf.AsSpan(_end));
            Advance(n);
        }

        return CopyOut(buffer);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (Releasable == _start && !(_eof && _scan == _end))
        {
            Compact();
            var n = await _inner.ReadAsync(_buf.AsMemory(_end), cancellationToken).ConfigureAwait(false);
            Advance(n);
        }

        return CopyOut(buffer.Span);
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    private int CopyOut(Span<byte> buffer)
    {
        var n = Math.Min(buffer.Length, Releasable - _start);
        _buf.AsSpan(_start, n).CopyTo(buffer);
        _start += n;
        return n;
    }

    /// <summary>Drops released bytes and makes room for a chunk (the buffer grows while a record is held back).</summary>
    private void Compact()
    {
        if (_start > 0)
        {
            _buf.AsSpan(_start, _end - _start).CopyTo(_buf);
            _end -= _start;
            _scan -= _start;
            _recordStart -= _start;
            _openAt -= _start;
            if (_spanAt >= 0)
            {
                _spanAt -= _start;
            }

            _start = 0;
        }

        if (_buf.Length - _end < ChunkSize / 2)
        {
            Array.Resize(ref _buf, _buf.Length * 2);
        }
    }

    private void Advance(int read)
    {
        _end += read;
        _eof = read == 0;
        if (!_started)
        {
            if (!Start())
            {
                return;
            }
        }

        if (_passThrough)
        {
            _scan = _end;
            return;
        }

        Scan();
        if (_eof && _inQuotes)
        {
            Break(CsvBrokenQuoteKind.EndOfInput);
            Scan();
        }
    }

    /// <summary>Decides the dialect once enough of the input is there; <see langword="false"/> to read more first.</summary>
    private bool Start()
    {
        var data = _buf.AsSpan(0, _end);
        if (!_eof && (data.Length < 4 || (_limits.Separator is null && data.Length < 16 * 1024 && data.Count((byte)'\n') < 32)))
        {
            return false;
        }

        _started = true;
        if (_limits.PassThrough || data.StartsWith(Utf16Le) || data.StartsWith(Utf16Be) || data.StartsWith(Utf32Be))
        {
            _passThrough = true;
            return true;
        }

        _separator = _limits.Separator ?? DetectSeparator(data);
        _outside = SearchValues.Create(new[] { _limits.Quote, _separator, (byte)'\r', (byte)'\n' });
        _inside = SearchValues.Create(new[] { _limits.Quote, (byte)'\r', (byte)'\n' });
        return true;
    }

    /// <summary>The separator CsvHelper detects from the same start of the input (its "sep=" line included).</summary>
    private byte DetectSeparator(ReadOnlySpan<byte> data)
    {
        var bom = data.StartsWith(Utf8Bom) ? Utf8Bom.Length : 0;
        _hintLine = data[bom..].StartsWith("sep="u8);
        try
        {
            using var probe = CsvReader.Create(data.ToArray(), CsvReaderOptions.Default with { Quote = (char)_limits.Quote, TrimWhitespace = _limits.TrimWhitespace });
            return (byte)probe.Separator;
        }
        catch (CsvFormatException)
        {
            return (byte)',';
        }
    }

    private void Scan()
    {
        while (_scan < _end)
        {
            if (_discarding && !Discard())
            {
                return;
            }

            if (_quoteSeen)
            {
                // The byte after a quote inside a quoted field: another quote escapes it, anything else closes the field.
                _quoteSeen = false;
                if (_buf[_scan] == _limits.Quote)
                {
                    _scan++;
                    continue;
                }

                _inQuotes = false;
                _afterClose = true;
            }

            if (_inQuotes)
            {
                if (!ScanQuoted())
                {
                    return;
                }

                continue;
            }

            if (_afterClose)
            {
                var b = _buf[_scan];
                if (_limits.TrimWhitespace && b is (byte)' ' or (byte)'\t')
                {
                    _scan++;
                    continue;
                }

                _afterClose = false;
                if (b != _separator && b is not ((byte)'\r' or (byte)'\n') && _openBreaks > 0)
                {
                    Break(CsvBrokenQuoteKind.TextAfterClosingQuote);
                    continue;
                }
            }

            if (!ScanUnquoted())
            {
                return;
            }
        }

        if (_eof && _quoteSeen)
        {
            _quoteSeen = false;
            _inQuotes = false;
        }

        if (_eof && !_inQuotes && _scan == _end && _end > _recordStart)
        {
            EndRecord(_end);
        }
    }

    /// <summary>Scans inside a quoted field up to its next quote or line break; <see langword="false"/> when more input is needed.</summary>
    private bool ScanQuoted()
    {
        var rest = _buf.AsSpan(_scan, _end - _scan);
        var i = rest.IndexOfAny(_inside!);
        var length = _scan + (i < 0 ? rest.Length : i) - _openAt;
        if (length > _limits.MaxFieldBytes)
        {
            Break(CsvBrokenQuoteKind.TooManyBytes);
            return true;
        }

        if (i < 0)
        {
            _scan = _end;
            return false;
        }

        _scan += i;
        var b = _buf[_scan];
        if (b == _limits.Quote)
        {
            _quoteSeen = true;
            _scan++;
            return true;
        }

        if (!TakeLineBreak(out var more))
        {
            return !more;
        }

        _openBreaks++;
        if (_spanAt < 0)
        {
            (_spanAt, _spanLine, _spanField) = (_openAt, _openLine, _openField);
        }

        if (_openBreaks + 1 > _limits.MaxFieldLines)
        {
            Break(CsvBrokenQuoteKind.TooManyLines);
        }

        return true;
    }

    /// <summary>Scans outside quotes up to the next quote, separator or line break; <see langword="false"/> when more input is needed.</summary>
    private bool ScanUnquoted()
    {
        var rest = _buf.AsSpan(_scan, _end - _scan);
        var i = rest.IndexOfAny(_outside!);
        var skipped = i < 0 ? rest : rest[..i];
        if (skipped.Length > 0 && !(_limits.TrimWhitespace && skipped.IndexOfAnyExcept((byte)' ', (byte)'\t') < 0))
        {
            _atFieldStart = false;
        }

        if (i < 0)
        {
            _scan = _end;
            return true;
        }

        _scan += i;
        var b = _buf[_scan];
        if (b == _limits.Quote)
        {
            if (_atFieldStart)
            {
                _inQuotes = true;
                (_openAt, _openLine, _openField, _openBreaks) = (_scan, _line, _field, 0);
            }

            _atFieldStart = false;
            _scan++;
        }
        else if (b == _separator)
        {
            _field++;
            _atFieldStart = true;
            _scan++;
        }
        else
        {
            var at = _scan;
            if (!TakeLineBreak(out _))
            {
                return false;
            }

            EndRecord(at);
        }

        return true;
    }

    /// <summary>Steps over a line break (CR LF as one); <see langword="false"/> when a CR ends the input read so far.</summary>
    private bool TakeLineBreak(out bool needMore)
    {
        needMore = false;
        if (_buf[_scan] == (byte)'\r')
        {
            if (_scan + 1 == _end && !_eof)
            {
                needMore = true;
                return false;
            }

            if (_scan + 1 < _end && _buf[_scan + 1] == (byte)'\n')
            {
                _scan++;
            }
        }

        _scan++;
        _line++;
        return true;
    }

    /// <summary>Ends the record whose line break (or the end of input) is at <paramref name="at"/>.</summary>
    private void EndRecord(int at)
    {
        var fields = _field + 1;
        var empty = at == _recordStart;
        if (_hintLine && !empty)
        {
            // Excel's "sep=;" line: not a record.
            _hintLine = false;
            empty = true;
        }

        if (!empty && _headerFields < 0)
        {
            _headerFields = fields;
        }
        else if (!empty && _spanAt >= 0 && _limits.CheckFieldCount && fields != _headerFields)
        {
            Break(CsvBrokenQuoteKind.FieldCount);
            return;
        }

        if (!empty)
        {
            _records++;
        }

        _field = 0;
        _atFieldStart = true;
        _spanAt = -1;
        _recordStart = _scan;
        _recordLine = _line;
    }

    /// <summary>
    /// Takes the first quote of the record that spans lines (or the open one) as never closed: reports the record up to
    /// the end of that quote's line, blanks it to empty lines, and scans on from that line's break.
    /// </summary>
    private void Break(CsvBrokenQuoteKind kind)
    {
        var (at, line, field) = _spanAt >= 0 ? (_spanAt, _spanLine, _spanField) : (_openAt, _openLine, _openField);
        var lineEnd = _buf.AsSpan(at, _end - at).IndexOfAny(LineBreaks);
        var stop = lineEnd < 0 ? _end : at + lineEnd;
        var raw = _buf.AsSpan(_recordStart, Math.Min(stop - _recordStart, MaxRawBytes)).ToArray();
        _discarding = lineEnd < 0 && !_eof;
        var isHeader = _limits.HasHeader && _records == 0;
        _onBroken(new CsvBrokenQuote(line, field, kind, raw, isHeader));

        // The record's lines before the quote's line become empty lines; the quote's line keeps its own break.
        var breaks = (int)(line - _recordLine);
        _buf.AsSpan(_recordStart, breaks).Fill((byte)'\n');
        var from = _recordStart + breaks;
        _buf.AsSpan(stop, _end - stop).CopyTo(_buf.AsSpan(from));
        _end -= stop - from;

        _scan = from;
        _line = line;
        _inQuotes = false;
        _quoteSeen = false;
        _afterClose = false;
        _field = 0;
        _atFieldStart = true;
        _spanAt = -1;
        _recordStart = from;
        _recordLine = line;
        if (isHeader)
        {
            _records = 1;
        }
    }

    /// <summary>Drops the rest of a line whose quoted field was too long; <see langword="false"/> when more input is needed.</summary>
    private bool Discard()
    {
        var i = _buf.AsSpan(_scan, _end - _scan).IndexOfAny(LineBreaks);
        if (i < 0)
        {
            _end = _scan;
            return false;
        }

        _buf.AsSpan(_scan + i, _end - _scan - i).CopyTo(_buf.AsSpan(_scan));
        _end -= i;
        _discarding = false;
        return true;
    }
}
