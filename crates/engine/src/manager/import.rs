//! Ingestion: recommendations are stored all or nothing (I6, B7), streamed. Lines are parsed
//! as they arrive and written, a chunk at a time, into the import's one database transaction,
//! so an input of any length is imported in bounded memory; a bad line rolls that transaction
//! back and the rest of the input is only checked, to report every bad line. After the
//! commit, the price each recommendation carries is a quote for its expert's account, when
//! that account's broker takes quotes.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use tradewarden_domain::NewRecommendation;
use tradewarden_domain::expert::Expert;
use tradewarden_domain::recommendation::{
    ImportTally, LineError, LineParser, ParseContext, ParsedLine,
};

use super::TradeManager;
use crate::error::EngineError;
use crate::ports::{
    ImportCounts, ImportError, ImportSession, Quote, RecommendationStore, StoreError,
};

/// What `import` prints: the store's counts.
pub type ImportSummary = ImportCounts;

/// Lines parsed before they are written, together, into the import's transaction. A fixed
/// number, so the store's multi-row statements keep one shape (and its statement cache
/// reuses them); a chunk of parsed lines takes about 1 MB.
pub const IMPORT_CHUNK_LINES: usize = 2_000;

/// Lines parsed between two polls of the chunk being written: often enough that its
/// statements follow one another while the next chunk is parsed.
const DRIVE_EVERY: usize = 32;

impl TradeManager {
    /// Begins a streamed JSON Lines import: give it every line of the input with
    /// [`JsonlImport::line`], then [`JsonlImport::finish`]. Dropping it unfinished stores
    /// nothing.
    pub async fn begin_import(&self) -> Result<JsonlImport<'_>, EngineError> {
        let ctx = ParseContext::with_max_clock_skew_seconds(
            self.clock.now(),
            self.settings.max_clock_skew_seconds,
        );
        Ok(JsonlImport {
            manager: self,
            parser: LineParser::new(&ctx),
            pending: Vec::with_capacity(IMPORT_CHUNK_LINES),
            writer: Some(ImportWriter::begin(self.store.as_ref()).await?),
            in_flight: None,
            bad: Vec::new(),
            quotes: LatestQuotes::default(),
        })
    }

    /// Parses and stores a JSON Lines batch held in memory, all or nothing (I6, B7): the
    /// streamed import ([`TradeManager::begin_import`]) over its lines.
    pub async fn import_jsonl(
        &self,
        input: impl AsRef<[u8]>,
    ) -> Result<ImportSummary, EngineError> {
        let mut import = self.begin_import().await?;
        for line in input.as_ref().split(|b| *b == b'\n') {
            import.line(line).await?;
        }
        import.finish().await
    }

    /// Stores validated recommendations, then hands their prices to the brokers that take
    /// quotes. Conflicts are reported by batch index.
    pub async fn import(&self, recs: &[NewRecommendation]) -> Result<ImportSummary, EngineError> {
        let counts = self.store.import(recs).await.map_err(import_failure)?;
        self.quote_prices_of(recs).await;
        Ok(counts)
    }

    /// Hands the prices of committed recommendations to the brokers that take quotes (the
    /// newest per account and symbol); a failure is a warning ([`LatestQuotes::send_after_commit`]).
    pub(crate) async fn quote_prices_of(&self, recs: &[NewRecommendation]) {
        let mut quotes = LatestQuotes::default();
        for r in recs {
            quotes.offer(self, r);
        }
        quotes.send_after_commit(self).await;
    }

    /// Records quotes for every broker that takes them; returns, per account, how many
    /// stored quotes changed.
    pub async fn record_quotes(
        &self,
        quotes: &[Quote],
    ) -> Result<Vec<(String, usize)>, EngineError> {
        let mut accounts: Vec<&String> = self.brokers.keys().collect();
        accounts.sort();
        let mut changed = Vec::new();
        for account in accounts {
            if let Some(sink) = self.brokers[account].accepts_quotes() {
                changed.push((account.clone(), sink.record_quotes(quotes).await?));
            }
        }
        Ok(changed)
    }
}

/// A JSON Lines import in progress. It holds at most two chunks of parsed lines (one being
/// written, one being parsed), the index of the identities seen (see [`ImportTally`]), the
/// newest quote per account and symbol, and the bad lines found.
pub struct JsonlImport<'m> {
    manager: &'m TradeManager,
    parser: LineParser,
    /// Parsed lines not written yet: fewer than a chunk.
    pending: Vec<ParsedLine>,
    /// The import's store session, while no chunk is being written; gone for good once a line
    /// was bad (what it wrote is rolled back, and the rest of the input is only checked).
    writer: Option<ImportWriter<'m>>,
    /// The chunk being written, with the session: started before the next chunk is parsed, so
    /// the database inserts one chunk while this process parses the next.
    in_flight: Option<ChunkWrite<'m>>,
    bad: Vec<LineError>,
    quotes: LatestQuotes<'m>,
}

/// A chunk's write, owning the session it hands back when done.
type ChunkWrite<'m> =
    Pin<Box<dyn Future<Output = (ImportWriter<'m>, Result<(), StoreError>)> + Send + 'm>>;

/// The check a parsed line's expert passes: it is configured (else the `expert_id` field's
/// error).
pub(super) fn known_expert(
    experts: &BTreeMap<i64, Expert>,
) -> impl Fn(&NewRecommendation) -> Result<(), (String, String)> + '_ {
    |r| match experts.contains_key(&r.expert_id) {
        true => Ok(()),
        false => Err((
            "expert_id".to_string(),
            format!("unknown expert {}", r.expert_id),
        )),
    }
}

impl JsonlImport<'_> {
    /// Takes the next line of the input: its bytes without the `\n`, blank lines included
    /// (they count in the line numbers). Errors only when the store fails; a bad line is
    /// reported by [`JsonlImport::finish`].
    pub async fn line(&mut self, bytes: &[u8]) -> Result<(), EngineError> {
        let known = known_expert(&self.manager.settings.experts);
        let parsed = self.parser.next_line(bytes, known);
        if self.parser.lines().is_multiple_of(DRIVE_EVERY) {
            self.drive_write().await?;
        }
        match parsed {
            Ok(None) => Ok(()),
            Ok(Some(_)) if !self.bad.is_empty() => Ok(()),
            Ok(Some(parsed)) => {
                self.quotes.offer(self.manager, &parsed.rec);
                self.pending.push(parsed);
                if self.pending.len() == IMPORT_CHUNK_LINES {
                    self.start_write().await?;
                }
                Ok(())
            }
            Err(errors) => {
                if self.bad.is_empty() {
                    self.stop_writing().await;
                }
                self.bad.extend(errors);
                Ok(())
            }
        }
    }

    /// How many lines were given so far, blank ones included.
    pub fn lines(&self) -> usize {
        self.parser.lines()
    }

    /// Ends the input: commits and quotes when every line is good and none conflicts with a
    /// stored recommendation or an earlier line; else stores nothing and reports every bad
    /// line (or, when all parsed, every conflicting one) by its 1-based number.
    pub async fn finish(mut self) -> Result<ImportSummary, EngineError> {
        if !self.bad.is_empty() {
            return Err(bad_lines(self.bad));
        }
        self.start_write().await?;
        self.wait_for_write().await?;
        let writer = self
            .writer
            .take()
            .ok_or_else(|| StoreError::database("the import's session was closed"))?;
        let counts = writer.finish().await.map_err(import_failure)?;
        self.quotes.send_after_commit(self.manager).await;
        Ok(counts)
    }

    /// Starts writing the pending lines, once the chunk before them is written: the write is
    /// polled now and every [`DRIVE_EVERY`] lines, so the database works on it while the
    /// caller goes on parsing; [`JsonlImport::wait_for_write`] collects what is left.
    async fn start_write(&mut self) -> Result<(), EngineError> {
        self.wait_for_write().await?;
        let Some(mut writer) = self.writer.take() else {
            self.pending.clear();
            return Ok(());
        };
        let chunk = std::mem::replace(&mut self.pending, Vec::with_capacity(IMPORT_CHUNK_LINES));
        self.in_flight = Some(Box::pin(async move {
            let written = writer.write(&chunk).await;
            (writer, written)
        }));
        self.drive_write().await
    }

    /// Polls the chunk being written once, in this task: its next statement goes to the
    /// database, or its answer is taken with the session.
    async fn drive_write(&mut self) -> Result<(), EngineError> {
        let Some(write) = &mut self.in_flight else {
            return Ok(());
        };
        let polled = std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await;
        if let Poll::Ready((writer, written)) = polled {
            self.in_flight = None;
            self.writer = Some(writer);
            written?;
        }
        Ok(())
    }

    /// Waits for the chunk being written, if any, and takes the session back.
    async fn wait_for_write(&mut self) -> Result<(), EngineError> {
        if let Some(write) = self.in_flight.take() {
            let (writer, written) = write.await;
            self.writer = Some(writer);
            written?;
        }
        Ok(())
    }

    /// A bad line: nothing will be stored, so the session is rolled back now (after the
    /// chunk being written, whose outcome no longer matters) and the lines and quotes kept
    /// for it are let go.
    async fn stop_writing(&mut self) {
        let _ = self.wait_for_write().await;
        self.writer = None;
        self.pending = Vec::new();
        self.quotes = LatestQuotes::default();
    }
}

/// Bad lines as the engine reports them: `(line, "field: problem")`.
fn bad_lines(errors: Vec<LineError>) -> EngineError {
    let named = |e: LineError| match e.field {
        Some(field) => (e.line, format!("{field}: {}", e.message)),
        None => (e.line, e.message),
    };
    EngineError::BadInput(errors.into_iter().map(named).collect())
}

fn import_failure(e: ImportError) -> EngineError {
    match e {
        ImportError::Conflicts(v) => EngineError::BadInput(v),
        ImportError::Store(e) => e.into(),
    }
}

/// One import's chunks written into its store session and counted by [`ImportTally`]; shared
/// by the streamed import and [`RecommendationStore::import`].
pub(crate) struct ImportWriter<'s> {
    session: Box<dyn ImportSession + 's>,
    tally: ImportTally,
}

impl<'s> ImportWriter<'s> {
    /// Opens the store's import session.
    pub(crate) async fn begin<S>(store: &'s S) -> Result<Self, StoreError>
    where
        S: RecommendationStore + ?Sized,
    {
        Ok(ImportWriter {
            session: store.begin_import().await?,
            tally: ImportTally::new(),
        })
    }

    /// Writes the lines whose identity is new in the input unless stored, then counts every
    /// line of the chunk against what the store inserted and holds.
    pub(crate) async fn write(&mut self, chunk: &[ParsedLine]) -> Result<(), StoreError> {
        write_chunk(self.session.as_mut(), &mut self.tally, chunk).await
    }

    /// Commits when no line conflicts; otherwise rolls back and returns the conflicts by line.
    pub(crate) async fn finish(self) -> Result<ImportCounts, ImportError> {
        let counts = ImportCounts {
            imported: self.tally.imported(),
            already_present: self.tally.already_present(),
        };
        let conflicts = self.tally.into_conflicts();
        if !conflicts.is_empty() {
            return Err(ImportError::Conflicts(conflicts));
        }
        self.session.commit().await?;
        Ok(counts)
    }
}

/// Writes a chunk's lines whose identity is new in the input unless stored, into `session`,
/// then counts every line of the chunk in `tally` against what the store inserted and holds.
pub(crate) async fn write_chunk(
    session: &mut (dyn ImportSession + '_),
    tally: &mut ImportTally,
    chunk: &[ParsedLine],
) -> Result<(), StoreError> {
    let plan = tally.plan(chunk);
    let firsts: Vec<&NewRecommendation> = plan.firsts.iter().map(|p| &p.rec).collect();
    let inserted = if firsts.is_empty() {
        Vec::new()
    } else {
        session.insert_new(&firsts).await?
    };

    if inserted.len() != firsts.len() {
        return Err(StoreError::database(format!(
            "the store answered for {} of {} inserted recommendations",
            inserted.len(),
            firsts.len()
        )));
    }
    let lookups = plan.lookups(&inserted);
    let stored = if lookups.is_empty() {
        Vec::new()
    } else {
        session.stored(&lookups).await?
    };
    tally
        .settle(&plan, &inserted, &stored)
        .map_err(|e| StoreError::database(e.to_string()))
}

/// [`RecommendationStore::import`]: a batch in memory through one import session, line `i + 1`
/// for `recs[i]`, conflicts reported by batch index.
pub(crate) async fn import_slice<S>(
    store: &S,
    recs: &[NewRecommendation],
) -> Result<ImportCounts, ImportError>
where
    S: RecommendationStore + ?Sized,
{
    let lines: Vec<ParsedLine> = recs
        .iter()
        .enumerate()
        .map(|(i, rec)| ParsedLine {
            line: i + 1,
            rec: rec.clone(),
        })
        .collect();
    let mut writer = ImportWriter::begin(store).await?;
    for chunk in lines.chunks(IMPORT_CHUNK_LINES) {
        writer.write(chunk).await?;
    }
    writer.finish().await.map_err(|e| match e {
        ImportError::Conflicts(v) => {
            ImportError::Conflicts(v.into_iter().map(|(line, m)| (line - 1, m)).collect())
        }
        other => other,
    })
}

/// The newest quote per account and symbol among an import's recommendations (a later line
/// wins a tie, as it would in the broker's own "newest by time" rule): one a symbol is all
/// a broker keeps, so that is all the import holds.
#[derive(Default)]
struct LatestQuotes<'a> {
    /// Account → symbol → (price, time).
    by_account: HashMap<&'a str, HashMap<String, (Decimal, DateTime<Utc>)>>,
}

impl<'a> LatestQuotes<'a> {
    /// Takes `rec`'s price as a quote for its expert's account (an unknown expert has none).
    fn offer(&mut self, manager: &'a TradeManager, rec: &NewRecommendation) {
        let Some(expert) = manager.settings.experts.get(&rec.expert_id) else {
            return;
        };
        let quote = (rec.price_at_date.get(), rec.created_at);
        let quotes = self.by_account.entry(expert.account.as_str()).or_default();
        match quotes.get_mut(rec.symbol.as_str()) {
            Some((_, at)) if rec.created_at < *at => {}
            Some(newest) => *newest = quote,
            None => {
                quotes.insert(rec.symbol.clone(), quote);
            }
        }
    }

    /// Records the quotes with each account's broker, when it takes quotes.
    /// [`LatestQuotes::send`] once the recommendations are committed: they are stored
    /// whatever happens to their prices, so a failure to record these is a warning, not the
    /// import's failure (an error would tell the caller a stored batch was not stored; under
    /// many concurrent imports a paper account's optimistic save can give up). The next
    /// import or `prices` records newer quotes.
    async fn send_after_commit(self, manager: &TradeManager) {
        if let Err(e) = self.send(manager).await {
            tracing::warn!(
                "the recommendations are stored; their prices were not recorded as quotes: {e}"
            );
        }
    }

    async fn send(self, manager: &TradeManager) -> Result<(), EngineError> {
        for (account, quotes) in self.by_account {
            let sink = manager
                .brokers
                .get(account)
                .and_then(|b| b.accepts_quotes());
            if let Some(sink) = sink {
                let quotes: Vec<Quote> = quotes
                    .into_iter()
                    .map(|(symbol, (price, at))| Quote { symbol, price, at })
                    .collect();
                sink.record_quotes(&quotes).await?;
            }
        }
        Ok(())
    }
}
