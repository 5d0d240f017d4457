//! The log lines: text (the default) or JSON, on stderr; and the fields of a text line,
//! written as `tracing-subscriber`'s default formatter writes them, for less.
//!
//! Why: the worker logs a line per request, inside a span that carries the request's
//! `msg_id`, `account`, `endpoint` and `call_id`. The default field formatter writes every
//! field through `core::fmt`: the name through an ANSI style (even with colour off) and a
//! string value through `str`'s `Debug`, which checks every character for escaping. Those
//! four ids and the line's own fields cost about 10 000 instructions per request, most of
//! what logging cost a request. [`PlainFields`] writes a field whose name and value need
//! nothing of that (no colour, a value of printable ASCII other than `"` and `\`, an integer,
//! a boolean) straight to the line, and hands every other field (the message, errors, floats,
//! `Debug` values, any string that needs escaping) to the default formatter, so the line is
//! byte for byte what it was. [`PlainLine`] writes the rest of the line (the time, the
//! level, the spans and the target) as the default `Full` format does, without its styling
//! machinery. Lines with colour (a terminal) use the default formatter.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::{RecordFields, VisitOutput};
use tracing_subscriber::fmt::format::{
    DefaultVisitor, Format, FormatEvent, FormatFields, Full, Writer,
};
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Logs text lines to stderr, at the levels `filter` lets through, coloured when `ansi`.
/// Without colour (a file, a pipe, journald), the line is written by [`PlainLine`] and its
/// fields by [`PlainFields`]. The timestamp is [`LineTime`]'s, the default timer's text.
pub fn init_text(filter: EnvFilter, ansi: bool) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_timer(LineTime)
        .with_ansi(ansi);
    if ansi {
        builder.init()
    } else {
        builder
            .fmt_fields(PlainFields)
            .event_format(PlainLine::new(LineTime))
            .init()
    }
}

/// Logs JSON lines to stderr, at the levels `filter` lets through; a line carries the
/// request's context once, as `span`.
pub fn init_json(filter: EnvFilter) {
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .init()
}

/// The line's timestamp, as the default timer (`tracing-subscriber`'s `SystemTime`) writes
/// it, `2026-12-02T16:43:53.123456Z`, for less: the date and time of day are worked out once
/// a second (per thread) rather than through `core::fmt` for every line, which was about
/// 2 500 instructions a line. A time before 1970 or after 9999 goes to the default timer.
#[derive(Debug, Default, Clone, Copy)]
pub struct LineTime;

impl FormatTime for LineTime {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        match since_epoch {
            Ok(t) if t.as_secs() <= LAST_SECOND_OF_9999 => {
                let text = stamp(t.as_secs(), t.subsec_micros());
                // The stamp is ASCII digits and separators.
                w.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
            }
            _ => tracing_subscriber::fmt::time::SystemTime.format_time(w),
        }
    }
}

/// 9999-12-31T23:59:59Z, in seconds since the epoch.
const LAST_SECOND_OF_9999: u64 = 253_402_300_799;

thread_local! {
    /// The second last stamped on this thread, and its `YYYY-MM-DDTHH:MM:SS.` text.
    static SECOND: std::cell::Cell<(u64, [u8; 20])> = const { std::cell::Cell::new((u64::MAX, [0; 20])) };
}

/// `secs` after the epoch and `micros` more, as `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
fn stamp(secs: u64, micros: u32) -> [u8; 27] {
    let (cached, mut prefix) = SECOND.get();
    if cached != secs {
        prefix = second_text(secs);
        SECOND.set((secs, prefix));
    }
    let mut out = [0u8; 27];
    out[..20].copy_from_slice(&prefix);
    digits(&mut out[20..26], u64::from(micros));
    out[26] = b'Z';
    out
}

/// `YYYY-MM-DDTHH:MM:SS.` of `secs` after the epoch (the proleptic Gregorian calendar, UTC;
/// the day's date by Howard Hinnant's `civil_from_days`).
fn second_text(secs: u64) -> [u8; 20] {
    let (days, in_day) = (secs / 86_400, secs % 86_400);
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let mut out = *b"0000-00-00T00:00:00.";
    digits(&mut out[0..4], year);
    digits(&mut out[5..7], month);
    digits(&mut out[8..10], day);
    digits(&mut out[11..13], in_day / 3_600);
    digits(&mut out[14..16], in_day / 60 % 60);
    digits(&mut out[17..19], in_day % 60);
    out
}

/// `n` in decimal, zero-padded to fill `out`.
fn digits(out: &mut [u8], mut n: u64) {
    for d in out.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// A line without colour, as `tracing-subscriber`'s default format (`Full`) writes it:
/// `<time> <level> <span>{<fields>}:...: <target>: <fields>`.
///
/// Why: the default format writes each part through `core::fmt` and a style (bold span
/// names, a dimmed target and colons, a padded level), which does nothing without colour but
/// costs its formatting all the same: about 2 000 of the 6 000 instructions a line took
/// (callgrind, one line per request). Here each part is written as the text it is. A line
/// with colour, and a record of the `log` crate (whose target and level the default format
/// reads from the record's own fields), go to the default format.
#[derive(Debug)]
pub struct PlainLine<T> {
    timer: T,
    fallback: Format<Full, T>,
}

impl<T: FormatTime + Clone> PlainLine<T> {
    /// Lines stamped by `timer`.
    pub fn new(timer: T) -> Self {
        Self {
            fallback: tracing_subscriber::fmt::format().with_timer(timer.clone()),
            timer,
        }
    }
}

/// A level as the default format writes it without colour: padded to five characters.
fn level_text(level: Level) -> &'static str {
    match level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => " INFO",
        Level::WARN => " WARN",
        Level::ERROR => "ERROR",
    }
}

impl<S, N, T> FormatEvent<S, N> for PlainLine<T>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    T: FormatTime,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        if writer.has_ansi_escapes() || meta.fields().field("log.target").is_some() {
            return self.fallback.format_event(ctx, writer, event);
        }
        if self.timer.format_time(&mut writer).is_err() {
            writer.write_str("<unknown time>")?;
        }
        writer.write_char(' ')?;
        writer.write_str(level_text(*meta.level()))?;
        writer.write_char(' ')?;
        if let Some(scope) = ctx.event_scope() {
            let mut seen = false;
            for span in scope.from_root() {
                writer.write_str(span.metadata().name())?;
                seen = true;
                let ext = span.extensions();
                if let Some(fields) = ext.get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    writer.write_char('{')?;
                    writer.write_str(fields)?;
                    writer.write_char('}')?;
                }
                writer.write_char(':')?;
            }
            if seen {
                writer.write_char(' ')?;
            }
        }
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        ctx.format_fields(writer.by_ref(), event)?;
        writer.write_char('\n')
    }
}

/// A [`FormatFields`] that writes what `DefaultFields` writes, without colour.
#[derive(Debug, Default, Clone, Copy)]
pub struct PlainFields;

impl<'writer> FormatFields<'writer> for PlainFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut v = PlainVisitor {
            writer,
            is_empty: true,
            result: Ok(()),
        };
        fields.record(&mut v);
        v.result
    }
}

struct PlainVisitor<'a> {
    writer: Writer<'a>,
    is_empty: bool,
    result: fmt::Result,
}

/// Whether the default formatter's message writer escapes any of `s`: the terminal controls
/// ESC, BEL, BS, FF and DEL, and the C1 controls (U+0080 to U+009F).
fn escaped_by_the_default_formatter(s: &str) -> bool {
    s.bytes()
        .any(|b| matches!(b, 0x1b | 0x07 | 0x08 | 0x0c | 0x7f))
        || s.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c))
}

/// A message's text, formatted on the stack: up to 256 bytes, and an error beyond, so that a
/// longer message goes to the default formatter.
struct Short {
    bytes: [u8; 256],
    len: usize,
}

impl Default for Short {
    fn default() -> Self {
        Self {
            bytes: [0; 256],
            len: 0,
        }
    }
}

impl Short {
    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// `parts`, one after the other; `None` when they do not fit.
    fn joined(parts: &[&str]) -> Option<Self> {
        let mut text = Self::default();
        for p in parts {
            fmt::Write::write_str(&mut text, p).ok()?;
        }
        Some(text)
    }
}

impl fmt::Write for Short {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        self.bytes
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Whether `str`'s `Debug` writes `s` unchanged between its quotes: printable ASCII other
/// than `"` and `\` (read a word at a time: a span's ids are 32 bytes each).
fn plain(s: &str) -> bool {
    s.is_ascii()
        && crate::json_writer::needs_no_escape(s.as_bytes())
        && !s.as_bytes().contains(&0x7f)
}

impl PlainVisitor<'_> {
    /// Whether a field of this name may be written here. The message, `r#` names, `log.`
    /// metadata and anything on a line with colour go to the default formatter.
    fn writes(&self, field: &Field) -> bool {
        let name = field.name();
        self.result.is_ok()
            && !self.writer.has_ansi_escapes()
            && name != "message"
            && !name.starts_with("r#")
            && !name.starts_with("log.")
    }

    /// `name=` after the separating space, as the default formatter writes it.
    fn name(&mut self, field: &Field) -> fmt::Result {
        if !self.is_empty {
            self.writer.write_char(' ')?;
        }
        self.is_empty = false;
        self.writer.write_str(field.name())?;
        self.writer.write_char('=')
    }

    /// `name=value` for a value whose `Debug` is its `Display` (integers, booleans), when
    /// the field may be written here; else the default formatter writes it.
    fn display_or_default(
        &mut self,
        field: &Field,
        value: impl fmt::Display,
        record: impl FnOnce(&mut DefaultVisitor<'_>),
    ) {
        if self.writes(field) {
            self.result = self
                .name(field)
                .and_then(|()| write!(self.writer, "{value}"));
        } else {
            self.default_writes(record);
        }
    }

    /// The default formatter writes this field.
    fn default_writes(&mut self, record: impl FnOnce(&mut DefaultVisitor<'_>)) {
        if self.result.is_err() {
            return;
        }
        let mut v = DefaultVisitor::new(self.writer.by_ref(), self.is_empty);
        record(&mut v);
        self.result = v.finish();
        // It wrote the field, or skipped it (`log.` metadata, which `writes` keeps from
        // coming here), so there is something on the line now.
        self.is_empty = false;
    }
}

impl Visit for PlainVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.writes(field) && plain(value) {
            // ` name="value"`, put together on the stack and written at once: each write to
            // the line is two dynamic calls (through the fields' writer and the line's).
            let space = if self.is_empty { "" } else { " " };
            if let Some(text) = Short::joined(&[space, field.name(), "=\"", value, "\""])
                && let Ok(text) = std::str::from_utf8(text.as_bytes())
            {
                self.is_empty = false;
                self.result = self.writer.write_str(text);
                return;
            }
            self.result = self.name(field).and_then(|()| {
                self.writer.write_char('"')?;
                self.writer.write_str(value)?;
                self.writer.write_char('"')
            });
        } else {
            self.default_writes(|v| v.record_str(field, value));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.display_or_default(field, value, |v| v.record_i64(field, value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.display_or_default(field, value, |v| v.record_u64(field, value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.display_or_default(field, value, |v| v.record_bool(field, value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // The default formatter writes a float as its `Debug` (`1.0`, `0.25`).
        self.display_or_default(field, format_args!("{value:?}"), |v| {
            v.record_f64(field, value)
        });
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.default_writes(|v| v.record_error(field, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" && self.result.is_ok() && !self.writer.has_ansi_escapes() {
            // The message, written as the default formatter writes it when it holds nothing
            // that formatter escapes (every message of the worker's own): formatted once
            // into a buffer and copied, not passed character by character through the
            // escaping writer.
            let mut text = Short::default();
            if fmt::write(&mut text, format_args!("{value:?}")).is_ok()
                && let Ok(text) = std::str::from_utf8(text.as_bytes())
                && !escaped_by_the_default_formatter(text)
            {
                if !std::mem::replace(&mut self.is_empty, false) {
                    self.result = self.writer.write_char(' ');
                }
                self.result = self.result.and_then(|()| self.writer.write_str(text));
                return;
            }
        }
        self.default_writes(|v| v.record_debug(field, value));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::fmt::format::DefaultFields;

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("the buffer").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    #[derive(Debug)]
    struct Failure;
    impl fmt::Display for Failure {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("the broker \"closed\" it")
        }
    }
    impl std::error::Error for Failure {}

    /// Lines of every kind of field, in a span like the worker's.
    fn emit() {
        let span = tracing::info_span!(
            "build",
            msg_id = "load-1-abcdef",
            account = "be0c4000000000000000000000000001",
            endpoint = tracing::field::Empty,
            call_id = "a \"quoted\" call\\id",
        );
        let _entered = span.enter();
        tracing::info!(legs = 3, ms = 0.25, "built");
        // A field recorded after the span's creation is appended to its others.
        span.record("endpoint", "be0c4000000000000000000000000002");
        tracing::info!(legs = 0u64, ms = 1.0, done = true, "not built");
        tracing::warn!(error = %Failure, redelivered = false, "reply not published");
        tracing::warn!(
            error = &Failure as &(dyn std::error::Error + 'static),
            "an error"
        );
        tracing::info!(
            code = "no_endpoints",
            text = "ünïcode",
            tab = "a\tb",
            empty = "",
            "x"
        );
        tracing::info!(r#type = "device", n = -7i64, ?span, "raw names and Debug");
        tracing::info!("only a message with \"quotes\" and \u{1b}[31m an escape");
        tracing::info!(ms = 1e-7, big = 1e21, nan = f64::NAN, neg = -0.0, "floats");
        tracing::info!("a C1 control \u{85}, a bell \u{7}, DEL \u{7f}, ünïcode");
        tracing::info!(n = 1, "formatted {} of {:?}", 2, "three");
        tracing::info!("{}", "long ".repeat(60));
        tracing::info!(bytes = 1_048_577usize, "last");
        // A plain field too long to be put together on the stack.
        tracing::info!(long = "ab".repeat(150).as_str(), "a long field");
        // Every level, another target, a span inside the span, one without fields, and a
        // line outside any span.
        let inner = tracing::debug_span!("registrar", keys = 2);
        inner.in_scope(|| {
            tracing::debug!(target: "kz_endpoint::registrar", "asked");
            tracing::trace_span!("round").in_scope(|| tracing::trace!(n = 1, "deep"));
        });
        drop(_entered);
        tracing::error!(error = "lost", "outside");
        tracing::warn!(target: "lapin", "the broker closed the channel");
    }

    /// A timer that always writes the same time, and fails when asked to.
    #[derive(Clone, Copy)]
    struct Fixed(bool);

    impl FormatTime for Fixed {
        fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
            if self.0 {
                w.write_str("2026-12-03T09:00:00.000001Z")
            } else {
                Err(fmt::Error)
            }
        }
    }

    /// The lines of [`emit`], with `fields` and `format`, coloured when `ansi`.
    fn lines<N, E>(fields: N, format: E, ansi: bool) -> String
    where
        N: for<'w> FormatFields<'w> + Send + Sync + 'static,
        E: FormatEvent<tracing_subscriber::Registry, N> + Send + Sync + 'static,
    {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(buffer.clone())
            .with_ansi(ansi)
            .with_max_level(tracing::Level::TRACE)
            .fmt_fields(fields)
            .event_format(format)
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let bytes = buffer.0.lock().expect("the buffer").clone();
        String::from_utf8(bytes).expect("UTF-8 lines")
    }

    fn default_format(timer: Fixed) -> Format<Full, Fixed> {
        tracing_subscriber::fmt::format().with_timer(timer)
    }

    #[test]
    fn lines_are_those_of_the_default_formatter() {
        let default = lines(DefaultFields::new(), default_format(Fixed(true)), false);
        let plain = lines(PlainFields, default_format(Fixed(true)), false);
        assert_eq!(plain, default);
        let line = lines(PlainFields, PlainLine::new(Fixed(true)), false);
        assert_eq!(line, default);
        // A timer that fails, and lines with colour (which go to the default format).
        assert_eq!(
            lines(PlainFields, PlainLine::new(Fixed(false)), false),
            lines(DefaultFields::new(), default_format(Fixed(false)), false)
        );
        assert_eq!(
            lines(PlainFields, PlainLine::new(Fixed(true)), true),
            lines(DefaultFields::new(), default_format(Fixed(true)), true)
        );
        // The comparison covers what it should: both fast paths and the fallbacks ran.
        assert!(default.contains(
            "build{msg_id=\"load-1-abcdef\" account=\"be0c4000000000000000000000000001\" call_id=\"a \\\"quoted\\\" call\\\\id\"}"
        ));
        assert!(default.contains("built legs=3 ms=0.25"));
        assert!(default.contains("\\id\" endpoint=\"be0c4000000000000000000000000002\"}: "));
        assert!(default.contains("not built legs=0 ms=1.0 done=true"));
        assert!(default.contains("text=\"ünïcode\" tab=\"a\\tb\" empty=\"\""));
        assert!(default.contains("floats ms=1e-7 big=1e21 nan=NaN neg=-0.0"));
        assert!(default.contains("a C1 control \\u{85}, a bell \\x07, DEL \\x7f, ünïcode"));
        assert!(default.contains("formatted 2 of \"three\" n=1"));
        assert!(default.starts_with("2026-12-03T09:00:00.000001Z  INFO build{msg_id="));
        assert!(
            default.contains(
                "\"}:registrar{keys=2}:round: kz_endpoint::log_format::tests: deep n=1\n"
            )
        );
        assert!(default.contains("DEBUG build{"));
        assert!(default.contains("}: kz_endpoint::registrar: asked\n"));
        assert!(
            default.contains("Z ERROR kz_endpoint::log_format::tests: outside error=\"lost\"\n")
        );
        assert!(default.contains("Z  WARN lapin: the broker closed the channel\n"));
        assert!(default.contains(&format!("a long field long=\"{}\"\n", "ab".repeat(150))));
        assert_eq!(default.lines().count(), 17);
    }

    #[test]
    fn stamps_are_the_calendar_s() {
        for (secs, micros, text) in [
            (0, 0, "1970-01-01T00:00:00.000000Z"),
            (951_782_400, 1, "2000-02-29T00:00:00.000001Z"),
            (951_868_799, 999_999, "2000-02-29T23:59:59.999999Z"),
            (4_107_542_399, 5, "2100-02-28T23:59:59.000005Z"),
            (4_107_542_400, 50, "2100-03-01T00:00:00.000050Z"),
            (1_796_169_599, 123_456, "2026-12-01T23:59:59.123456Z"),
            (1_796_169_600, 0, "2026-12-02T00:00:00.000000Z"),
            (1_709_210_096, 7, "2024-02-29T12:34:56.000007Z"),
            (1_234_567_890, 42, "2009-02-13T23:31:30.000042Z"),
            (LAST_SECOND_OF_9999, 999_999, "9999-12-31T23:59:59.999999Z"),
        ] {
            assert_eq!(std::str::from_utf8(&stamp(secs, micros)).unwrap(), text);
            // Again, from the second cached on this thread.
            assert_eq!(std::str::from_utf8(&stamp(secs, micros)).unwrap(), text);
        }
    }

    /// Every day from 1970 to 2400 is the day after the one before, in the calendar's order.
    #[test]
    fn days_follow_each_other() {
        let days_in = |y: u64, m: u64| match m {
            2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let (mut y, mut m, mut d) = (1970, 1, 1);
        for day in 0..157_000u64 {
            let text = second_text(day * 86_400 + 86_399);
            assert_eq!(
                std::str::from_utf8(&text).unwrap(),
                format!("{y:04}-{m:02}-{d:02}T23:59:59."),
                "day {day}"
            );
            d += 1;
            if d > days_in(y, m) {
                (d, m) = (1, m + 1);
                if m > 12 {
                    (m, y) = (1, y + 1);
                }
            }
        }
    }

    /// The stamp of now is the default timer's, to the second (and to the microsecond's
    /// width).
    #[test]
    fn now_is_stamped_as_the_default_timer_stamps_it() {
        let stamped = |timer: &dyn Fn(&mut Writer<'_>) -> fmt::Result| {
            let mut text = String::new();
            timer(&mut Writer::new(&mut text)).unwrap();
            text
        };
        for _ in 0..3 {
            let ours = stamped(&|w| LineTime.format_time(w));
            let theirs = stamped(&|w| tracing_subscriber::fmt::time::SystemTime.format_time(w));
            assert_eq!(ours.len(), theirs.len(), "{ours} {theirs}");
            if ours[..19] == theirs[..19] {
                return;
            }
            // A second ended between the two: again.
        }
        panic!("three seconds ended between two stamps");
    }

    #[test]
    fn plain_means_written_unchanged_by_debug() {
        for s in [
            "",
            "abc",
            "a b",
            "x@y.z",
            "~!#$%^&*()[]{}<>?/|'`",
            "be0c4000000000000000000000000001",
        ] {
            assert!(plain(s), "{s}");
            assert_eq!(format!("{s:?}"), format!("\"{s}\""));
        }
        for s in [
            "\"",
            "\\",
            "\t",
            "\n",
            "é",
            "\u{7f}",
            "\u{1b}",
            "an id of 32 letters and digits\u{7f}",
            "be0c4000000000000000000000000001\"",
            "\u{1}e0c4000000000000000000000000001",
            "be0c40000000000\u{85}00000000000001",
        ] {
            assert!(!plain(s), "{s}");
        }
    }
}
