//! Every saved listing page, read end to end (parse, then clean) with values
//! checked by hand against the page: how many questions it holds, and the
//! first, middle and last of them, author as displayed included.

use chrono::{DateTime, Utc};
use stackcrawl::model::{AuthorAction, AuthorAction::*, PageContext, Question};
use stackcrawl::source::html::clean::clean_page;
use stackcrawl::source::html::parse::parse_listing;

fn read(name: &str) -> Vec<Question> {
    let path = format!(
        "{}/tests/fixtures/so-html/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let html = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let page = parse_listing(&html).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(page.drift, None, "{name}");
    let ctx = PageContext {
        site: "stackoverflow.com".into(),
        base_url: "https://stackoverflow.com".into(),
        tag: String::new(),
        tab: String::new(),
        page: 1,
    };
    let listing = clean_page(&page, &ctx, DateTime::<Utc>::UNIX_EPOCH);
    assert!(
        listing.rejections.is_empty(),
        "{name}: {:?}",
        listing.rejections
    );
    listing.questions
}

/// Questions per page (every summary of the page, none rejected).
const COUNTS: [(&str, usize); 19] = [
    ("csse-tagged-complexity-theory-newest-2014.html", 15),
    ("dbase-tagged-database-administration-newest-2014.html", 15),
    (
        "electronicsse-tagged-integrated-circuit-newest-2014.html",
        15,
    ),
    ("homepage-narrow-2018.html", 96),
    ("meta-homepage-2026-resaved.html", 48),
    ("quantse-tagged-equities-newest-2014.html", 15),
    ("questions-newest-2026-resaved.html", 15),
    ("serverfault-tagged-bash-newest-2014.html", 15),
    ("so-home-interesting-2016.html", 96),
    ("so-questions-active-2020.html", 50),
    ("so-questions-bounties-featured-2020.html", 50),
    ("so-questions-unanswered-2020.html", 50),
    ("so-tagged-gitlab-newest-2020.html", 50),
    ("so-tagged-odoo-server-2020.html", 3),
    ("tagged-command-newest-2020.html", 50),
    ("tagged-python-newest-2013.html", 15),
    ("tagged-python-newest-2025.html", 15),
    ("tagged-python-votes-2020.html", 50),
    ("tagged-webcam-newest-2014-bounty-closed.html", 15),
];

/// One question as the page shows it.
struct Seen {
    page: &'static str,
    index: usize,
    id: u64,
    title: &'static str,
    votes: i64,
    answers: u64,
    views: u64,
    author: Option<&'static str>,
    user_id: Option<i64>,
    action: Option<AuthorAction>,
}

const SEEN: [Seen; 57] = [
    Seen { page: "csse-tagged-complexity-theory-newest-2014.html", index: 0, id: 19865, title: "Does $DTIME(2^n)$ contain $NSPACE(n)$ ?", votes: 0, answers: 1, views: 21, author: Some("NumberFour"), user_id: Some(12901), action: Some(Asked) },
    Seen { page: "csse-tagged-complexity-theory-newest-2014.html", index: 7, id: 19692, title: "Is this reduction done correctly?", votes: 1, answers: 0, views: 32, author: Some("Setzer22"), user_id: Some(12801), action: Some(Asked) },
    Seen { page: "csse-tagged-complexity-theory-newest-2014.html", index: 14, id: 19543, title: "Existence of NP problems with complexity intermediate between P and NP-hard", votes: 4, answers: 1, views: 99, author: Some("Michael"), user_id: Some(10447), action: Some(Asked) },
    Seen { page: "dbase-tagged-database-administration-newest-2014.html", index: 0, id: 57162, title: "SQL Command for Querying the database?", votes: -2, answers: 0, views: 34, author: Some("user3130920"), user_id: Some(33067), action: Some(Asked) },
    Seen { page: "dbase-tagged-database-administration-newest-2014.html", index: 7, id: 56522, title: "mysql multi threading for a single query", votes: 4, answers: 2, views: 73, author: Some("user183980"), user_id: Some(32691), action: Some(Asked) },
    Seen { page: "dbase-tagged-database-administration-newest-2014.html", index: 14, id: 55857, title: "MS SQL Server instance name", votes: 2, answers: 3, views: 56, author: Some("trevzeuq"), user_id: Some(32260), action: Some(Asked) },
    Seen { page: "electronicsse-tagged-integrated-circuit-newest-2014.html", index: 0, id: 97047, title: "How to design a binary counter with 4029 binary counter ic", votes: -1, answers: 0, views: 34, author: Some("popgalop"), user_id: Some(35113), action: Some(Asked) },
    Seen { page: "electronicsse-tagged-integrated-circuit-newest-2014.html", index: 7, id: 96275, title: "Increasing the frequency of mutual exclusion circuit", votes: -2, answers: 0, views: 152, author: Some("James Bowery"), user_id: Some(35447), action: None },
    Seen { page: "electronicsse-tagged-integrated-circuit-newest-2014.html", index: 14, id: 93376, title: "Why does the bandwidth of an OP Amp decrease as temperature decreases??", votes: 4, answers: 1, views: 62, author: Some("Kvegaoro"), user_id: Some(11760), action: Some(Asked) },
    Seen { page: "homepage-narrow-2018.html", index: 0, id: 52418095, title: "Larave Where Collection", votes: 0, answers: 0, views: 12, author: Some("Ibu"), user_id: Some(560299), action: Some(Modified) },
    Seen { page: "homepage-narrow-2018.html", index: 48, id: 52418049, title: "Which security parameters to consider before third party SDK integration", votes: 0, answers: 0, views: 6, author: Some("rmaddy"), user_id: Some(1226963), action: Some(Modified) },
    Seen { page: "homepage-narrow-2018.html", index: 95, id: 52397450, title: "Celery worker running tensorflow unable to create CUDA event", votes: 5, answers: 0, views: 26, author: Some("talonmies"), user_id: Some(681865), action: Some(Modified) },
    Seen { page: "meta-homepage-2026-resaved.html", index: 0, id: 438369, title: "I’m Jody, the Chief Product and Technology Officer at Stack Overflow, let’s talk about the site redesign", votes: 12, answers: 17, views: 1034, author: Some("David Maze"), user_id: Some(10008173), action: Some(Answered) },
    Seen { page: "meta-homepage-2026-resaved.html", index: 24, id: 438317, title: "Search terms are lost", votes: 7, answers: 0, views: 55, author: Some("Slate"), user_id: Some(16481332), action: Some(Modified) },
    Seen { page: "meta-homepage-2026-resaved.html", index: 47, id: 430451, title: "Notification clearing for followed questions", votes: 14, answers: 0, views: 172, author: Some("wjandrea"), user_id: Some(4518341), action: Some(Modified) },
    Seen { page: "quantse-tagged-equities-newest-2014.html", index: 0, id: 9909, title: "Why do quants have such a big edge on retail investors?", votes: 0, answers: 0, views: 45, author: Some("Noob Coder"), user_id: Some(6938), action: Some(Asked) },
    Seen { page: "quantse-tagged-equities-newest-2014.html", index: 7, id: 9425, title: "UAC- Unbiased Average Correlation for a Matrix of stocks", votes: 0, answers: 0, views: 59, author: Some("Steeple"), user_id: Some(5558), action: Some(Asked) },
    Seen { page: "quantse-tagged-equities-newest-2014.html", index: 14, id: 9081, title: "backtesting with open, close, high and low", votes: 0, answers: 1, views: 206, author: Some("elelias"), user_id: Some(6221), action: Some(Asked) },
    Seen { page: "questions-newest-2026-resaved.html", index: 0, id: 79898520, title: "Gitlab - Docker image - private project", votes: 0, answers: 0, views: 5, author: Some("Rick"), user_id: Some(11301191), action: Some(Asked) },
    Seen { page: "questions-newest-2026-resaved.html", index: 7, id: 79898489, title: "Make clion format for() enter { into allman style", votes: 0, answers: 0, views: 33, author: Some("Bogdan Gumenuik"), user_id: Some(32432699), action: Some(Asked) },
    Seen { page: "questions-newest-2026-resaved.html", index: 14, id: 79898452, title: "IntelliJ plugin action not showing in Commit toolbar", votes: -2, answers: 1, views: 26, author: Some("oksymisbah"), user_id: Some(28966571), action: Some(Asked) },
    Seen { page: "serverfault-tagged-bash-newest-2014.html", index: 0, id: 568177, title: "Unexpected EOF while looking for matching ``' - Bash Script", votes: -3, answers: 1, views: 33, author: Some("user3106527"), user_id: Some(204974), action: Some(Asked) },
    Seen { page: "serverfault-tagged-bash-newest-2014.html", index: 7, id: 565086, title: "Why does system lag or stall after successful completion of tar backup command?", votes: 0, answers: 2, views: 34, author: Some("Faron"), user_id: Some(171061), action: Some(Asked) },
    Seen { page: "serverfault-tagged-bash-newest-2014.html", index: 14, id: 563313, title: "Redirect to stdin instead of argument when using xargs", votes: 1, answers: 2, views: 37, author: Some("Yoga"), user_id: Some(50774), action: Some(Asked) },
    Seen { page: "so-home-interesting-2016.html", index: 0, id: 15034832, title: "Recover unsaved SQL query scripts", votes: 107, answers: 9, views: 113997, author: Some("frapeti"), user_id: Some(3408685), action: Some(Answered) },
    Seen { page: "so-home-interesting-2016.html", index: 48, id: 40556919, title: "In Javascript, why define an array with split?", votes: 1, answers: 2, views: 49, author: Some("Soviut"), user_id: Some(46914), action: Some(Modified) },
    Seen { page: "so-home-interesting-2016.html", index: 95, id: 40557505, title: "Chef bootstrapping on Azure doesn't populate the cloud_v2 attribute", votes: 2, answers: 0, views: 7, author: Some("nomizzz"), user_id: Some(667595), action: Some(Asked) },
    Seen { page: "so-questions-active-2020.html", index: 0, id: 63892583, title: "MySQL SELECT Query assumes 1623x=1623 is True", votes: 0, answers: 1, views: 6, author: Some("GMB"), user_id: Some(10676716), action: Some(Answered) },
    Seen { page: "so-questions-active-2020.html", index: 25, id: 63892433, title: "(Python) Grouping intervals in pandas dataframe", votes: 0, answers: 1, views: 10, author: Some("Reza"), user_id: Some(8162394), action: Some(Answered) },
    Seen { page: "so-questions-active-2020.html", index: 49, id: 63891795, title: "Started getting TypeError: Cannot read property 'getCapabilities' of undefined", votes: 0, answers: 1, views: 17, author: Some("krunal patel"), user_id: Some(14277547), action: Some(Answered) },
    Seen { page: "so-questions-bounties-featured-2020.html", index: 0, id: 63741540, title: "LEAK: ByteBuf.release() was not called - how do we solve this?", votes: 1, answers: 1, views: 134, author: Some("peter.petrov"), user_id: Some(2300597), action: Some(Asked) },
    Seen { page: "so-questions-bounties-featured-2020.html", index: 25, id: 63738423, title: "Disable WebSecurity for pre-prod environments Spring Boot", votes: 1, answers: 4, views: 121, author: Some("user771"), user_id: Some(5528325), action: Some(Asked) },
    Seen { page: "so-questions-bounties-featured-2020.html", index: 49, id: 63698904, title: "Pulling image from twitter in android", votes: 0, answers: 1, views: 61, author: Some("Ajay Kulkarni"), user_id: Some(4185813), action: Some(Asked) },
    Seen { page: "so-questions-unanswered-2020.html", index: 0, id: 49162455, title: "How to use classes to “control dreams”?", votes: 226, answers: 0, views: 5481, author: Some("8-Bit Borges"), user_id: Some(3451339), action: Some(Asked) },
    Seen { page: "so-questions-unanswered-2020.html", index: 25, id: 42721579, title: "Sinch API in an Angular 2 project times out on onCallProgressing", votes: 45, answers: 1, views: 1346, author: Some("dennismuijs"), user_id: Some(3165518), action: Some(Asked) },
    Seen { page: "so-questions-unanswered-2020.html", index: 49, id: 29370821, title: "IDX10500: Signature validation failed. Unable to resolve SecurityKeyIdentifier", votes: 36, answers: 0, views: 8117, author: Some("Robert"), user_id: Some(3703604), action: Some(Asked) },
    Seen { page: "so-tagged-gitlab-newest-2020.html", index: 0, id: 63892605, title: "How to test container running in docker-compose on gitlab", votes: 0, answers: 0, views: 4, author: Some("Connor Butch"), user_id: Some(4645723), action: Some(Asked) },
    Seen { page: "so-tagged-gitlab-newest-2020.html", index: 25, id: 63848609, title: "How to output mocha logs as gitlab artifacts from a docker compose container?", votes: 0, answers: 1, views: 18, author: Some("Jarede"), user_id: Some(127606), action: Some(Asked) },
    Seen { page: "so-tagged-gitlab-newest-2020.html", index: 49, id: 63818669, title: "Gitlab Pipeline CI/CD .gitlab-ci.yml for Angular", votes: 0, answers: 1, views: 23, author: Some("Vikash Dhiman"), user_id: Some(2107130), action: Some(Asked) },
    Seen { page: "so-tagged-odoo-server-2020.html", index: 0, id: 26053982, title: "setup script exited with error: command 'x86_64-linux-gnu-gcc' failed with exit status 1", votes: 349, answers: 33, views: 511710, author: Some("Madura Dissanayake"), user_id: Some(3440631), action: Some(Asked) },
    Seen { page: "so-tagged-odoo-server-2020.html", index: 1, id: 30194543, title: "Why am I getting “Internal Server Error” running two Odoo instances (same domain but different ports)?", votes: 6, answers: 4, views: 5090, author: Some("ChesuCR"), user_id: Some(4891717), action: Some(Asked) },
    Seen { page: "so-tagged-odoo-server-2020.html", index: 2, id: 26696849, title: "openerp-server goes down, and stops functioning", votes: 2, answers: 2, views: 1318, author: Some("aqavi_paracha"), user_id: Some(536214), action: Some(Asked) },
    Seen { page: "tagged-command-newest-2020.html", index: 0, id: 63892575, title: "Weird error in Command Prompt, trying to install package with PIP", votes: 0, answers: 0, views: 6, author: Some("Samuel DiSorbo"), user_id: Some(14116608), action: Some(Asked) },
    Seen { page: "tagged-command-newest-2020.html", index: 25, id: 63780058, title: "How to start a process in PM2 with custom command", votes: 0, answers: 1, views: 12, author: Some("levisnkyyyy"), user_id: Some(2737077), action: Some(Asked) },
    Seen { page: "tagged-command-newest-2020.html", index: 49, id: 63670957, title: "How to log every single command executed from shell script", votes: 0, answers: 2, views: 49, author: Some("Manikant Singh"), user_id: Some(5497301), action: Some(Asked) },
    Seen { page: "tagged-python-newest-2013.html", index: 0, id: 19524072, title: "Creating a mouse over text box in tkinter", votes: 0, answers: 0, views: 2, author: Some("Jack"), user_id: Some(2147331), action: Some(Asked) },
    Seen { page: "tagged-python-newest-2013.html", index: 7, id: 19523690, title: "python reading a csv file instaed reading file name", votes: 0, answers: 0, views: 23, author: Some("naveen yadav"), user_id: Some(1207003), action: Some(Asked) },
    Seen { page: "tagged-python-newest-2013.html", index: 14, id: 19523257, title: "Pandas equivalent to SQL where", votes: 1, answers: 1, views: 12, author: Some("user1893354"), user_id: Some(1893354), action: Some(Asked) },
    Seen { page: "tagged-python-newest-2025.html", index: 0, id: 79821892, title: "How to Automate Extraction and Standardization of Multilingual Name/Username Data Without Modifying the Original Database?", votes: 0, answers: 0, views: 12, author: Some("John Doe"), user_id: Some(20197103), action: Some(Asked) },
    Seen { page: "tagged-python-newest-2025.html", index: 7, id: 79821592, title: "Getting error \"TypeError: unsupported operand type(s) for /: 'list' and 'list'\"", votes: -3, answers: 1, views: 35, author: Some("mark jan Horst"), user_id: Some(4546356), action: Some(Asked) },
    Seen { page: "tagged-python-newest-2025.html", index: 14, id: 79821480, title: "Horizontal and vertical scrollbars using TKinter and Python almost working", votes: 0, answers: 2, views: 47, author: Some("TTM"), user_id: Some(25560525), action: Some(Asked) },
    Seen { page: "tagged-python-votes-2020.html", index: 0, id: 231767, title: "What does the “yield” keyword do?", votes: 10491, answers: 42, views: 2293587, author: Some("Alex. S."), user_id: Some(18300), action: Some(Asked) },
    Seen { page: "tagged-python-votes-2020.html", index: 25, id: 1024847, title: "How can I add new keys to a dictionary?", votes: 2718, answers: 16, views: 3594098, author: Some("lfaraone"), user_id: Some(90777), action: Some(Asked) },
    Seen { page: "tagged-python-votes-2020.html", index: 49, id: 930397, title: "Getting the last element of a list", votes: 2160, answers: 12, views: 2235117, author: Some("Janusz"), user_id: Some(114066), action: Some(Asked) },
    Seen { page: "tagged-webcam-newest-2014-bounty-closed.html", index: 0, id: 21250307, title: "When to use ImageEncodingProperties vs. VIdeoEncodingProperties", votes: 0, answers: 0, views: 4, author: Some("Thaine Norris"), user_id: Some(1866699), action: Some(Asked) },
    Seen { page: "tagged-webcam-newest-2014-bounty-closed.html", index: 7, id: 21134070, title: "How to reduce size of image captured from webcam", votes: 0, answers: 1, views: 17, author: Some("WackStr"), user_id: Some(2565138), action: Some(Asked) },
    Seen { page: "tagged-webcam-newest-2014-bounty-closed.html", index: 14, id: 21002836, title: "take screen from webcam and support by cmd", votes: -4, answers: 0, views: 39, author: Some("user3141844"), user_id: Some(3141844), action: Some(Asked) },
];

/// Each page is read once; its count and its checked questions compared.
#[test]
fn every_fixture_page_yields_all_its_questions_as_shown() {
    for (name, count) in COUNTS {
        let questions = read(name);
        assert_eq!(questions.len(), count, "{name}");
        for s in SEEN.iter().filter(|s| s.page == name) {
            let q = &questions[s.index];
            let at = format!("{}[{}]", s.page, s.index);
            assert_eq!(q.question_id, s.id, "{at}");
            assert_eq!(q.title, s.title, "{at}");
            assert_eq!(
                (q.votes, q.answers, q.views),
                (s.votes, s.answers, s.views),
                "{at}"
            );
            assert_eq!(q.author_name.as_deref(), s.author, "{at}");
            assert_eq!(q.author_user_id, s.user_id, "{at}");
            assert_eq!(q.author_has_profile, s.user_id.is_some(), "{at}");
            assert_eq!(q.author_action, s.action, "{at}");
        }
    }
    // Every checked question belongs to a counted page.
    assert!(SEEN
        .iter()
        .all(|s| COUNTS.iter().any(|(name, _)| *name == s.page)));
}
